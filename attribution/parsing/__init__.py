"""Pure parsing: a raw request in, a normalised event (or a SKAdNetwork postback) out.

No database.
"""
