"""What the convention mappers share to turn a span's attributes into call fields, one module per concern:
values (reading attribute values), tokens (usage arithmetic), providers, operations, finish_reasons,
errors (status and error type), timing, attribution, content, attribute_filter (what stays in attributes),
safe_attributes (what of it is stored while content capture is off)."""
