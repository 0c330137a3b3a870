"""Every SQL statement of the gateway's own schema, one module per table group.

The only gateway modules that import SQLAlchemy or speak SQL: the account sagas, the edge and
the routes call these functions inside the unit of work they opened (or, on the edge's hot
path, one pooled autocommit statement: :meth:`visiona.kit.db.Database.single_statement`).
"""
