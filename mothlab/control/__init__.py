"""mothlab.control"""
