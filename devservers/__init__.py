"""devservers"""
