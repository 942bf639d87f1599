"""mothlab.nets"""
