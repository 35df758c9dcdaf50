"""Study behaviour as plain functions: definition and assignment, reading and scoring, progress, images.

Views, DRF viewsets and admin actions call these; they hold no rules of their own.
"""
