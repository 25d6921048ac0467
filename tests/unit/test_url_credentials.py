"""Keys come from the environment, never from a URL: a storage URL with user:password@ is refused
at validation, and no message repeats the password (outside review: s3://KEY:SECRET@bucket/out/
passed --validate, ran every input, then failed with the password in a warning)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch.config import parse_config
from batch.errors import ConfigError, UnsupportedOperation
from batch.storage.urls import parse_url

# marked so that a secret cannot be a word the message says anyway (hypothesis found "AWS_AC")
SECRET = st.text(alphabet=string.ascii_letters + string.digits + "+=_-", min_size=6, max_size=40).map(
    lambda t: "Q9" + t
)


@given(secret=SECRET, scheme=st.sampled_from(["s3", "b2"]), where=st.sampled_from(["inputs", "output"]))
def test_credentials_in_a_storage_url_are_refused_without_repeating_them(
    secret: str, scheme: str, where: str
) -> None:
    url = f"{scheme}://KEYID:{secret}@bucket/{'in/a.mp4' if where == 'inputs' else 'out/'}"
    text = (
        f"inputs: [{url}]\noutput: /tmp/out/" if where == "inputs" else f"inputs: [/tmp/a.mp4]\noutput: {url}"
    )
    with pytest.raises(ConfigError) as got:
        parse_config(text)
    shown = str(got.value) + repr(got.value.to_dict())
    assert "credentials in a storage URL" in shown and "environment" in shown
    assert secret not in shown and "KEYID" not in shown


@given(secret=SECRET)
def test_a_file_url_with_a_user_and_host_does_not_repeat_the_password(secret: str) -> None:
    with pytest.raises(UnsupportedOperation) as got:
        parse_url(f"file://me:{secret}@nas/videos/a.mp4")
    assert secret not in str(got.value) + repr(got.value.to_dict())
    assert "nas" in str(got.value)


@pytest.mark.parametrize(
    ("inputs", "output", "said"),
    [
        ('["http://127.0.0.1:8765/dir/"]', "/tmp/o/", "http(s) input cannot be a folder"),
        ('["https://h.example/"]', "/tmp/o/", "http(s) input cannot be a folder"),
        ("[/tmp/src3/v.mp4]", "/tmp/src3/v.mp4", "is the input file inputs.0"),
        ("[/tmp/src3/v.mp4]", "/tmp/src3/v.mp4/sub/", "is the input file inputs.0"),
        ('["s3://b/out/v/v.mp4"]', "s3://b/out/", "is where its own output"),
    ],
)
def test_configs_that_cannot_run_fail_validation(inputs: str, output: str, said: str) -> None:
    """--validate promises a config that passes can run (outside review: these passed, then failed)."""
    with pytest.raises(ConfigError) as got:
        parse_config(f"inputs: {inputs}\noutput: {output}")
    assert said in str(got.value) and "SIGSECRET" not in str(got.value)


def test_an_input_file_beside_the_output_folder_is_fine() -> None:
    parse_config("inputs: [/tmp/src3/v.mp4, 'https://h.example/a.mp4?x=1']\noutput: /tmp/src3/")
    # a download endpoint with a trailing slash before its query is a file, as the runner reads it
    parse_config("inputs: ['https://h.example/v/?token=abc', 'https://h.example/?id=12']\noutput: /tmp/o/")


@pytest.mark.parametrize("field", ["max_runtime_s: 1e33", "stall_s: 1e300", "max_runtime_s: 2592001"])
def test_the_watchdogs_deadlines_are_bounded(field: str) -> None:
    """A deadline of 1e33 s is no deadline: the instance would bill until someone noticed."""
    with pytest.raises(
        ConfigError, match=r"limits\.(max_runtime_s|stall_s): Input should be less than or equal to"
    ):
        parse_config(f"inputs: [/tmp/a.mp4]\noutput: /tmp/o/\nlimits: {{{field}}}")
