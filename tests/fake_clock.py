"""A clock the tests move by hand, for callbacks that read the time (not a test module)."""


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now
