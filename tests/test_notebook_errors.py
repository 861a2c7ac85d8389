"""In a real IPython kernel: breaking_nn's errors are one short block; %tb and other errors unchanged."""
import pytest

CODE_ERROR = 'bnn.load_image("/no/such/photo.jpg")'


@pytest.fixture(scope="module")
def kernel():
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    yield client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def run(client, code: str) -> tuple[dict, list[dict]]:
    """Execute ``code``; (the reply's content, the iopub outputs: stream and error messages)."""
    outputs = []
    reply = client.execute_interactive(code, timeout=120, output_hook=lambda msg: outputs.append(msg)
                                       if msg["msg_type"] in ("stream", "error") else None)
    return reply["content"], outputs


def errors(outputs):
    return [o["content"] for o in outputs if o["msg_type"] == "error"]


def test_our_error_is_its_message_alone_and_the_cell_still_fails(kernel):
    run(kernel, "import breaking_nn as bnn")
    reply, outputs = run(kernel, CODE_ERROR)
    assert reply["status"] == "error" and reply["ename"] == "ImageLoadError"  # papermill still stops here
    (error,) = errors(outputs)
    assert error["ename"] == "ImageLoadError"
    text = "\n".join(error["traceback"])
    assert "image file /no/such/photo.jpg does not exist" in text and "%tb" in text
    assert len(error["traceback"]) == 2 and "images.py" not in text  # no wall of red


def test_tb_still_gives_the_full_traceback(kernel):
    run(kernel, "import breaking_nn as bnn")
    run(kernel, CODE_ERROR)
    _, outputs = run(kernel, "%tb")
    text = "\n".join("\n".join(e["traceback"]) for e in errors(outputs)) + "".join(
        o["content"].get("text", "") for o in outputs)
    assert "images.py" in text and "ImageLoadError" in text


def test_other_errors_keep_their_tracebacks_and_short_errors_false_restores_ours(kernel):
    run(kernel, "import breaking_nn as bnn\ndef inner():\n    return 1 / 0")
    _, outputs = run(kernel, "inner()")
    (error,) = errors(outputs)
    assert error["ename"] == "ZeroDivisionError" and "inner" in "\n".join(error["traceback"])
    run(kernel, "bnn.short_errors(False)")
    try:
        _, outputs = run(kernel, CODE_ERROR)
        (error,) = errors(outputs)
        assert "images.py" in "\n".join(error["traceback"])  # the normal traceback again
    finally:
        run(kernel, "bnn.short_errors(True)")


def test_outside_ipython_nothing_changes():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", "import breaking_nn as bnn; print(bnn.short_errors())"],
                            capture_output=True, text=True)
    assert result.stdout.strip() == "False" and "IPython" not in result.stderr
