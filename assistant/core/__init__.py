"""The core: customer fields, schemas, errors, settings, the knowledge base and text templates.

Imports nothing from the rest of the package and no web or plotting framework (import-linter checks both).
"""
