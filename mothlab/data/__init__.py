"""mothlab.data"""
