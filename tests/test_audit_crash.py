"""The audit log after a crash: group-committed records are on disk once flushed, a head left behind the
log and a partial last line are repaired when the log is opened again, and the chain verifies."""
from __future__ import annotations

import os

from chaintrace.api.audit import HEAD_FILE, LOG_FILE, AuditLog, verify


def _rec(i: int) -> dict:
    return {"key_id": "k", "action": "screen.address", "request": {"n": 1, "subjects": [f"a{i}"]},
            "answer": {"sha256": "0" * 64}, "data_version": None}


def test_group_commit_then_crash_repairs(tmp_path):
    log = AuditLog(tmp_path)
    for i in range(50):
        log.append(_rec(i))
    log.close()  # flush: every queued record written and synced
    assert verify(tmp_path)["ok"] and verify(tmp_path)["last_seq"] == 50
    head_before = (tmp_path / HEAD_FILE).read_bytes()
    # crash 1: a batch reached the log but not the head
    log = AuditLog(tmp_path)
    log.append(_rec(50))
    log.close()
    (tmp_path / HEAD_FILE).write_bytes(head_before)
    assert not verify(tmp_path)["ok"]  # detected as it stands
    # crash 2: a write cut in the middle of a record
    with open(tmp_path / LOG_FILE, "ab") as f:
        f.write(b'{"action":"screen.address","key_id":"k","seq":52,"pre')
    log = AuditLog(tmp_path)
    assert len(log.repaired) == 2, log.repaired
    for i in range(51, 60):
        log.append(_rec(i))
    log.close()
    v = verify(tmp_path)
    assert v["ok"], v["problems"]
    assert v["last_seq"] == 60 and v["records"] == 60


def test_repair_does_not_hide_deletions(tmp_path):
    log = AuditLog(tmp_path)
    for i in range(10):
        log.append(_rec(i))
    log.close()
    p = tmp_path / LOG_FILE
    lines = p.read_bytes().splitlines(keepends=True)
    p.write_bytes(b"".join(lines[:-2]))  # records deleted at the end: the head still names record 10
    AuditLog(tmp_path, sync=True).close()  # opening does not move the head back
    v = verify(tmp_path)
    assert not v["ok"] and any("deleted at the end" in x["problem"] for x in v["problems"])
    # an edited last record is not "repaired" into the head either
    p.write_bytes(b"".join(lines[:-1]) + lines[-1].replace(b'"a9"', b'"zz"'))
    os.truncate(tmp_path / HEAD_FILE, 0)
    AuditLog(tmp_path, sync=True).close()
    assert not verify(tmp_path)["ok"]
