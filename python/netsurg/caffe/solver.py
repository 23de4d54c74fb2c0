"""pycaffe's solvers: caffe.SGDSolver(path) and the others, get_solver.
The solver's type comes from the solver.prototxt (as Caffe's
get_solver); the class names are accepted for the scripts that use them."""
from .. import _core
from .net import Net


class Solver:
    def __init__(self, filename):
        self._core = _core.Solver(filename)
        self.net = Net._wrap(self._core.net())
        self.test_nets = [Net._wrap(n) for n in self._core.test_nets()]

    @property
    def iter(self):
        return self._core.iter

    def step(self, iters):
        self._core.step(iters)

    def solve(self, resume_file=None):
        if resume_file is not None:
            self.restore(resume_file)
        self._core.solve()

    def snapshot(self):
        self._core.snapshot()

    def restore(self, state_file):
        self._core.restore(state_file)


class SGDSolver(Solver):
    pass


class NesterovSolver(Solver):
    pass


class AdaGradSolver(Solver):
    pass


class RMSPropSolver(Solver):
    pass


class AdaDeltaSolver(Solver):
    pass


class AdamSolver(Solver):
    pass


def get_solver(filename):
    return Solver(filename)
