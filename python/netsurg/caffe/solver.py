"""pycaffe's solvers: caffe.SGDSolver(path) and the others, get_solver.
As pycaffe's, a class runs its own update rule whatever the file's `type`
says (caffe.SGDSolver on a file with type: "Adam" is SGD: pycaffe's C++
class decides), and get_solver(path) runs the rule the file names."""
from .. import _core
from .net import Net


class Solver:
    _TYPE = None  # get_solver: the file's type

    def __init__(self, filename):
        self._core = _core.Solver(filename, solver_type=self._TYPE)
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
    _TYPE = "SGD"


class NesterovSolver(Solver):
    _TYPE = "Nesterov"


class AdaGradSolver(Solver):
    _TYPE = "AdaGrad"


class RMSPropSolver(Solver):
    _TYPE = "RMSProp"


class AdaDeltaSolver(Solver):
    _TYPE = "AdaDelta"


class AdamSolver(Solver):
    _TYPE = "Adam"


def get_solver(filename):
    return Solver(filename)
