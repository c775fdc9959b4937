"""The one exception class of numpush."""

__all__ = ["Error"]

# Codes of <numpush/errors.h>, for errors that the Python layer raises itself.
_CODES = {
    "OK": 0, "ERR_ARG": 1, "ERR_NULL": 2, "ERR_DTYPE": 3, "ERR_OP": 4, "ERR_ROOT": 5,
    "ERR_RANK": 6, "ERR_COUNT": 7, "ERR_MISMATCH": 8, "ERR_PEER": 9, "ERR_TIMEOUT": 10,
    "ERR_PROTOCOL": 11, "ERR_NOMEM": 12, "ERR_SYSTEM": 13, "ERR_NOT_INIT": 14,
    "ERR_INIT": 15, "ERR_COMM": 16, "ERR_TRUNCATE": 17, "ERR_TAG": 18,
    "ERR_BOOTSTRAP": 19, "ERR_TRANSPORT": 20, "ERR_CONFIG": 21,
    "ERR_NOT_IMPLEMENTED": 22, "ERR_INTERNAL": 23, "ERR_LOCK": 24,
}


class Error(Exception):
    """A numpush failure, from the C library or from the Python layer.

    Attributes: ``name`` is the C error's symbolic name ("ERR_ROOT"), ``detail``
    the sentence saying which rank, which call, what was expected and seen,
    ``code`` the numeric np_err value.  ``Get_error_code()`` and
    ``Get_error_string()`` mirror mpi4py's ``MPI.Exception``.
    """

    def __init__(self, name, detail="", code=None):
        if code is None:
            code = _CODES.get(name, -1)
        super().__init__(name, detail, code)
        self.name = name
        self.detail = detail
        self.code = code

    def __str__(self):
        return f"{self.name}: {self.detail}" if self.detail else self.name

    def Get_error_code(self):
        return self.code

    def Get_error_string(self):
        return str(self)
