"""stripe"""
