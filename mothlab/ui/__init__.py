"""mothlab.ui"""
