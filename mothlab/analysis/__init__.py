"""mothlab.analysis"""
