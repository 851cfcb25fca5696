"""The dashboard's reads and request parsing: who sees what (access), the querystring (filters), and one
module of queries per page area, all scoped by billing.queries.Scope."""
