"""Names made from input URLs: output stems, local file names, redaction.

A stem becomes a key segment under the output prefix (``<output>/<stem>/...``)
and part of local paths, so it must never escape the prefix (``..``), hold a
separator, carry a presigned URL's query, or be too long for a file name.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from hypothesis import given, settings
from hypothesis import strategies as st

from batch.errors import ObjectNotFound
from batch.job.runner import output_stems
from batch.storage.urls import NAME_MAX_BYTES, redact_url, safe_name, url_basename, url_path

SECRET_QUERY = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAFAKE%2F20261202%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Signature=deadbeefSECRET&X-Amz-Security-Token=TOKENSECRET/with/slashes"
)


def check_stems(stems: list[str], count: int) -> None:
    assert len(stems) == count
    assert len(set(stems)) == count, stems  # unique
    for stem in stems:
        assert stem and stem not in (".", "..")
        assert "/" not in stem and "\\" not in stem
        assert all(ord(ch) >= 32 for ch in stem)
        assert len(stem.encode()) <= NAME_MAX_BYTES + 12  # the cap, plus a "-<n>" for duplicates
        # joined under a prefix, the stem stays under it
        key = f"out/{stem}/{stem}.mp4"
        assert PurePosixPath(key).parts[:2] == ("out", stem) and ".." not in PurePosixPath(key).parts


def test_dot_dot_stems_stay_under_the_output_prefix() -> None:
    urls = [
        "s3://b/in/...mp4",  # stem ".."
        "s3://b/a/...mp4",
        "http://h/x/..",
        "http://h/x/.",
        "b2://b/in/..mp4",  # stem "."
        "s3://b/in/.mp4",  # a hidden name, no suffix: fine as it is
        "http://h/",
        "/data/..",
    ]
    stems = output_stems(list(urls))
    check_stems(stems, len(urls))
    assert stems[0] == "input" and stems[5] == ".mp4"


def test_stems_and_names_come_from_the_path_never_the_query() -> None:
    url = f"http://127.0.0.1:8080/in/clip.mp4?{SECRET_QUERY}"
    assert url_path(url) == "in/clip.mp4"
    assert url_basename(url) == "clip.mp4"
    assert url_basename(url + "#frag") == "clip.mp4"
    assert output_stems([url, f"https://h/in/clip.mp4?{SECRET_QUERY}&x=1"]) == ["clip", "clip-2"]
    long_token = f"http://h/in/clip.mp4?X-Amz-Security-Token={'T' * 4096}"
    assert output_stems([long_token]) == ["clip"] and url_basename(long_token) == "clip.mp4"
    # s3 keys are not URLs with queries: "?" is part of the key
    assert url_basename("s3://b/in/a?b.mp4") == "a?b.mp4"


def test_long_and_odd_names_are_capped_and_safe() -> None:
    name = "é" * 300 + ".mp4"
    [stem] = output_stems([f"s3://b/in/{name}"])
    assert len(stem.encode()) <= NAME_MAX_BYTES and stem.startswith("é")
    assert safe_name("a\\b\x00c\nd") == "a_b_c_d"
    assert safe_name("..") == safe_name(".") == safe_name("") == ""


def test_redact_url_hides_user_info_for_every_scheme() -> None:
    assert redact_url("http://user:pa55word@host:9000/x.mp4?sig=1#f") == "http://***@host:9000/x.mp4?***"
    assert redact_url("https://token@host/x") == "https://***@host/x"
    assert redact_url("s3://AKIA:s3cret@bucket/k.mp4") == "s3://***@bucket/k.mp4"
    assert redact_url("b2://id:key@bucket/") == "b2://***@bucket/"
    assert redact_url("s3://bucket/a?b.mp4") == "s3://bucket/a?b.mp4"


piece = st.sampled_from([*"ab.-_ ?#%&=/\\é\x00\n", "..", "...", ".mp4", "clip"])
segment = st.lists(piece, max_size=8).map("".join)
url_strategy = st.one_of(
    st.builds(lambda s, k: f"{s}://bucket/{k}", st.sampled_from(["s3", "b2"]), segment),
    st.builds(lambda p, q: f"http://h:1/{p}" + (f"?{q}" if q else ""), segment, segment),
    st.builds(lambda k: f"https://u:p@h/{k}", segment),
    st.builds(lambda k: f"/data/{k}", segment),
    st.builds(lambda k: f"s3://bucket/{k}", st.text(max_size=300)),  # any characters, long ones
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(url_strategy, st.just(ObjectNotFound("missing"))), max_size=12))
def test_output_stems_are_safe_and_unique(urls: list) -> None:
    check_stems(output_stems(urls), len(urls))


@settings(max_examples=300, deadline=None)
@given(url_strategy, st.text(max_size=64))
def test_url_basename_never_carries_the_query(url: str, secret: str) -> None:
    name = url_basename(url)
    assert "/" not in name and "\\" not in name and name not in (".", "..")
    assert len(name.encode()) <= NAME_MAX_BYTES
    if url.startswith("http"):
        marked = url.split("?", 1)[0].split("#", 1)[0] + "?tok=ZZSECRETZZ" + secret
        assert "ZZSECRETZZ" not in url_basename(marked)


def test_weights_file_names_never_carry_the_query() -> None:
    from batch.weights.registry import from_url

    sha = "ab" * 32
    ref = from_url(f"https://h/w/model.pth?{SECRET_QUERY}", sha, "sr")
    assert ref.filename == "model.pth"
    assert from_url("s3://b/w/..", sha, "sr").filename == "weights"


def test_strict_redaction_also_cuts_the_query_of_object_urls() -> None:
    assert redact_url("s3://bucket/a?b.mp4", strict=True) == "s3://bucket/a?***"
    assert redact_url("b2://id:key@bucket/k#frag", strict=True) == "b2://***@bucket/k#***"
    assert redact_url("s3://bucket/plain.yaml", strict=True) == "s3://bucket/plain.yaml"
    url = "https://u:p@h/x.yaml?X-Amz-Signature=sig"
    assert redact_url(url, strict=True) == redact_url(url) == "https://***@h/x.yaml?***"


def test_launchers_show_config_url_through_the_one_redactor() -> None:
    import batch.providers.launch as launch

    env = {"CONFIG_URL": "https://h/j.yaml?X-Amz-Signature=sig", "AWS_SECRET_ACCESS_KEY": "s3cret"}
    assert launch.masked_env(env) == {"CONFIG_URL": "https://h/j.yaml?***", "AWS_SECRET_ACCESS_KEY": "***"}
    assert not hasattr(launch, "mask_url")  # no second redactor
