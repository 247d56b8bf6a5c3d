# Errors a command reports to the console as one line: "error: ENAME: detail".


class KernelError(Exception):
    """A failure with an errno-style name, e.g. KernelError("ENOMEM", "order 3")."""

    def __init__(self, errname, detail=""):
        super().__init__(errname, detail)
        self.errname = errname
        self.detail = detail

    def line(self):
        if self.detail:
            return "error: %s: %s" % (self.errname, self.detail)
        return "error: %s" % self.errname


def einval(detail):
    return KernelError("EINVAL", detail)
