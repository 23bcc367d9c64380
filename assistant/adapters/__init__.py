"""Adapters: everything a person or a program talks to (CLI, terminal chat, REST API, Gradio app, report).

Each adapter turns domain errors into its own form in one place: a chat reply, an HTTP 422, exit code 2.
"""
