"""The audit trail: sealed, chained records that `audit verify` checks offline."""

import json
import os

import pytest

from tunnel_client.policy.audit import AuditTrail
from tunnel_client.policy.verify import parse_head, verify

KEY = b"k" * 32


def trail(tmp_path, records=5, rotate_after=None):
    path = str(tmp_path / "audit.jsonl")
    audit = AuditTrail(path, KEY)
    audit.open()
    for i in range(records):
        if rotate_after is not None and i == rotate_after:
            os.rename(path, path + ".1")
            audit.reopen()
        assert audit.write({"channel": "main", "request_id": "req_%d" % i,
                            "method": "tools/call", "decision": "allow"})
    head = audit.chain_head()
    audit.close()
    return path, head


def lines(path):
    with open(path, "rb") as handle:
        return handle.read().splitlines(keepends=True)


def rewrite(path, new_lines):
    with open(path, "wb") as handle:
        handle.writelines(new_lines)


def test_an_untouched_trail_verifies_across_a_rotation_whatever_the_file_order(tmp_path):
    path, head = trail(tmp_path, 6, rotate_after=3)
    first = json.loads(lines(path)[0])
    assert first["type"] == "link" and first["reason"] == "reopen"
    verdict = verify([path, path + ".1"], KEY, (head["seq"], head["digest"]))
    assert verdict.ok, verdict.summary()
    # start link, 3 records | reopen link, 3 records, stop link
    assert verdict.records == 9 and verdict.first_seq == 0


def test_a_restarted_daemon_continues_the_chain(tmp_path):
    path, _ = trail(tmp_path, 2)
    audit = AuditTrail(path, KEY)
    audit.open()
    audit.write({"request_id": "after-restart"})
    audit.close()
    assert verify([path], KEY).ok


def test_an_edited_record_is_pinpointed(tmp_path):
    path, _ = trail(tmp_path)
    content = lines(path)
    content[2] = content[2].replace(b'"decision":"allow"', b'"decision":"deny"')
    rewrite(path, content)
    verdict = verify([path], KEY)
    assert not verdict.ok and verdict.where == "%s:3" % path
    assert "MAC does not match at seq 2" in verdict.message


def test_a_removed_record_is_pinpointed(tmp_path):
    path, _ = trail(tmp_path)
    content = lines(path)
    del content[3]
    rewrite(path, content)
    verdict = verify([path], KEY)
    assert "1 record missing between seq 2 and seq 4" in verdict.message


def test_swapped_records_are_pinpointed(tmp_path):
    path, _ = trail(tmp_path)
    content = lines(path)
    content[2], content[3] = content[3], content[2]
    rewrite(path, content)
    verdict = verify([path], KEY)
    assert not verdict.ok and "seq 3" in verdict.message and verdict.where.endswith(":3")


def test_a_record_appended_without_the_key_is_pinpointed(tmp_path):
    path, _ = trail(tmp_path)
    content = lines(path)
    last = json.loads(content[-1])
    import hashlib
    last.pop("mac")
    forged = dict(last, seq=last["seq"] + 1, prev=hashlib.sha256(
        content[-1].rstrip(b"\n")).hexdigest(), request_id="forged")
    forged["mac"] = "0" * 64  # shaped like a record, sealed without the key
    rewrite(path, content + [json.dumps(forged, separators=(",", ":")).encode() + b"\n"])
    verdict = verify([path], KEY)
    assert "forged" in verdict.message and verdict.where.endswith(":%d" % (len(content) + 1))


def test_a_truncated_file_is_caught_against_the_chain_head(tmp_path):
    path, head = trail(tmp_path)
    rewrite(path, lines(path)[:-2])
    assert verify([path], KEY).ok  # without the head a clean cut is invisible
    verdict = verify([path], KEY, (head["seq"], head["digest"]))
    assert "truncated" in verdict.message and "1 record missing at the end" in verdict.message
    verdict = verify([path], KEY, (None, head["digest"]))
    assert "truncated" in verdict.message


def test_a_record_cut_mid_line_and_a_wrong_key(tmp_path):
    path, _ = trail(tmp_path)
    content = lines(path)
    rewrite(path, content[:-1] + [content[-1][:40]])
    assert "incomplete" in verify([path], KEY).message
    rewrite(path, content)
    assert "key is wrong" in verify([path], b"x" * 32).message


def test_chain_head_syntax():
    digest = "a" * 64
    assert parse_head("12:" + digest) == (12, digest)
    assert parse_head(digest) == (None, digest)
    with pytest.raises(ValueError):
        parse_head("12:xyz")


def test_on_failure_deny_refuses_while_records_cannot_be_written(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    audit = AuditTrail(path, KEY, on_failure="deny")
    audit.open()
    os.rename(path, path + ".1")
    os.mkdir(path)  # something unwritable took the file's place
    os.close(audit._fd)  # and the open file went away under the writer
    assert not audit.write({"request_id": "lost"})
    assert audit.refusing and not audit.check().ok  # a reopen was tried, and failed
    os.rmdir(path)
    assert not audit.refusing  # reopened: the trail recovers with the disk
    assert audit.write({"request_id": "back"})
    audit.close()
    verdict = verify([path, path + ".1"], KEY)
    assert verdict.ok, verdict.summary()
    assert json.loads(lines(path)[0])["reason"] == "recover"


def test_the_chain_continues_after_a_record_longer_than_the_read_chunk(tmp_path):
    from tunnel_client.policy.audit import last_line
    path = str(tmp_path / "audit.jsonl")
    audit = AuditTrail(path, KEY)
    audit.open()
    audit.write({"request": "x" * 200000})  # payload capture makes long lines
    audit.close()
    assert last_line(path, chunk=1000) == lines(path)[-1].rstrip(b"\n")
    audit = AuditTrail(path, KEY)
    audit.open()
    audit.close()
    assert verify([path], KEY).ok


def test_on_failure_continue_counts_and_goes_on(tmp_path):
    from tunnel_client.observe.instruments import Instruments
    path = str(tmp_path / "audit.jsonl")
    audit = AuditTrail(path, KEY, on_failure="continue", instruments=Instruments())
    audit.open()
    os.rename(path, path + ".1")
    os.mkdir(path)
    os.close(audit._fd)
    assert not audit.write({"request_id": "lost"})
    assert not audit.refusing and audit.check().ok
    assert "continuing unrecorded" in audit.check().reason
    assert audit.metrics.audit_failures.value() == 1


def test_records_are_copied_to_syslog_when_asked(tmp_path, monkeypatch):
    import syslog
    sent = []
    monkeypatch.setattr(syslog, "openlog", lambda *args: sent.append(("open",) + args))
    monkeypatch.setattr(syslog, "syslog", lambda priority, line: sent.append(line))
    path = str(tmp_path / "audit.jsonl")
    audit = AuditTrail(path, KEY, syslog=True)
    audit.open()
    audit.write({"request_id": "r1"})
    audit.close()
    assert sent[0] == ("open", "tunnel-client-audit", 0, syslog.LOG_AUTHPRIV)
    assert [line.encode() + b"\n" for line in sent[1:]] == lines(path)


def test_the_tail_of_a_trail_verifies_on_its_own(tmp_path):
    from tunnel_client.policy.verify import verify_tail
    path, _ = trail(tmp_path, 50)
    assert verify_tail(path, KEY, max_bytes=2000).ok
    content = lines(path)
    content[-3] = content[-3].replace(b'"allow"', b'"deny"')
    rewrite(path, content)
    assert "MAC does not match" in verify_tail(path, KEY, max_bytes=2000).message


def test_a_restart_after_rotation_continues_from_the_saved_head(tmp_path):
    import glob
    path, _ = trail(tmp_path, 2)
    os.rename(path, path + ".1")  # rotated while the daemon was stopped
    audit = AuditTrail(path, KEY)
    audit.open()
    audit.write({"request_id": "after"})
    audit.close()
    files = glob.glob(path + "*")  # what an operator's shell glob gives
    assert sorted(files) == [path, path + ".1"]
    verdict = verify(files, KEY)
    assert verdict.ok, verdict.summary()
