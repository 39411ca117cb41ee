"""Compliance frameworks and questionnaires as data files (YAML) mapping controls to check ids."""
