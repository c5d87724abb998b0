import time


def mail_to(mail_dir, address: str, timeout: float = 10) -> str:
    """The newest mail the live stack wrote (file backend) to `address`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True):
            text = path.read_text()
            if f"To: {address}" in text:
                return text
        time.sleep(0.1)
    raise AssertionError(f"no mail to {address}")
