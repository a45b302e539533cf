"""peewee models, database setup and migrations, and the storage thread that owns the database."""
