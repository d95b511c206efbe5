"""connectors/erp"""
