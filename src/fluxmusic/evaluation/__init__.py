"""Evaluation: metrics and attribute checks (reconstruction quality: ``evaluation.reconstruction``).

Submodules are imported by full path; nothing heavy is imported here.
"""
