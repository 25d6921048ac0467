from batch.errors import (
    ConfigError,
    CredentialsRefused,
    InternalError,
    NotAVideo,
    ObjectNotFound,
    StorageUnreachable,
    exit_code_for,
)


def test_exit_code_precedence() -> None:
    assert exit_code_for([]) == 0
    assert exit_code_for([NotAVideo("x"), ObjectNotFound("y")]) == 1
    assert exit_code_for([NotAVideo("x"), StorageUnreachable("y")]) == 3
    assert exit_code_for([CredentialsRefused("x"), NotAVideo("y")]) == 3
    assert exit_code_for([ConfigError("x"), StorageUnreachable("y")]) == 2
    assert exit_code_for([InternalError("x"), ConfigError("y")]) == 4


def test_error_dict_carries_type_hint_and_fields() -> None:
    e = StorageUnreachable(
        "no answer from s3://b/k",
        hint="check the endpoint",
        url="s3://b/k",
        status=None,
    )
    assert e.retryable
    assert e.to_dict() == {
        "type": "storage_unreachable",
        "message": "no answer from s3://b/k",
        "hint": "check the endpoint",
        "url": "s3://b/k",
    }
    assert str(e) == "no answer from s3://b/k (fix: check the endpoint)"


def test_out_of_memory_is_read_from_the_message_without_torch() -> None:
    import subprocess
    import sys

    from batch.errors import says_out_of_memory

    assert says_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert says_out_of_memory(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    assert says_out_of_memory(RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert not says_out_of_memory(RuntimeError("shape mismatch"))
    assert not says_out_of_memory(ValueError("out of memory"))  # not a RuntimeError: not torch's
    code = "import sys, batch.errors; assert 'torch' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_stage_that_does_not_fit_one_input_fails_that_input_not_the_config() -> None:
    from batch.errors import EXIT_CONFIG, EXIT_INPUT_FAILED, ConfigError, StageDoesNotFit, exit_code_for

    err = StageDoesNotFit("crop does not fit", problems=["x + width > 128"], hint="lower x")
    assert err.code == "config_invalid" and isinstance(err, ConfigError)
    assert exit_code_for([err]) == EXIT_INPUT_FAILED
    assert exit_code_for([err, ConfigError("bad")]) == EXIT_CONFIG
    assert "x + width > 128" in str(err) and "(fix: lower x)" in str(err)
