"""orbit_cli"""
