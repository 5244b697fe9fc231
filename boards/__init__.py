"""Boards stage: bitstreams, constraints and build reports for real FPGA boards."""
