"""Engine and session factory: one SQLite file (BENCH_DB) shared by every uvicorn worker."""
import os

from sqlalchemy import create_engine, event
from sqlalchemy.orm import sessionmaker

DB_PATH = os.environ.get("BENCH_DB", "bench.db")
SQLALCHEMY_DATABASE_URL = f"sqlite:///{DB_PATH}"

engine = create_engine(
    SQLALCHEMY_DATABASE_URL,
    # FastAPI runs sync endpoints/dependencies in a threadpool: connections cross threads.
    connect_args={"check_same_thread": False, "timeout": 30},
)


@event.listens_for(engine, "connect")
def set_sqlite_pragma(dbapi_connection, connection_record):
    # WAL so readers don't block the writer, and a busy timeout so concurrent writers
    # (two workers inserting sessions) wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


SessionLocal = sessionmaker(bind=engine, autoflush=False, expire_on_commit=False)
