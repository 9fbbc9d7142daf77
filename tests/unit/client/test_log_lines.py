"""Log bytes to lines, as they arrive in chunks of any size."""

from __future__ import annotations

from airflow_neuro.client.neuro import _LineSplitter


def split(*chunks: bytes) -> list[str]:
    splitter = _LineSplitter()
    lines: list[str] = []
    for chunk in chunks:
        lines += splitter.feed(chunk)
    return lines + splitter.finish()


def test_lines_across_chunks() -> None:
    assert split(b"one\ntw", b"o\nthree") == ["one", "two", "three"]
    assert split(b"crlf\r\n", b"\n") == ["crlf", ""]


def test_a_character_split_between_chunks_is_joined() -> None:
    data = "épée ü\n".encode()
    assert split(data[:1], data[1:2], data[2:]) == ["épée ü"]


def test_a_truncated_character_at_the_end_is_replaced_not_lost() -> None:
    assert split("ok\nü".encode()[:-1]) == ["ok", "\ufffd"]


def test_bytes_received_are_counted_for_resuming() -> None:
    splitter = _LineSplitter()
    splitter.feed(b"abc\n")
    splitter.feed(b"de")
    assert splitter.received == 6
