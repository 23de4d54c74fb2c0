"""A CaffeNet made by netsurg for the pycaffe notebook checks: the deploy
net (scripts/make-caffenet.sh), random weights (netsurg init, seed 7,
msra: no trained CaffeNet is at hand) and the CLI's own FCN cast of it
(netsurg fcn, 451x451), the files the notebooks' model paths point at."""
import json
import os
import subprocess

from nscli import run

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def make(folder):
    """Writes deploy.prototxt, caffenet_random.caffemodel,
    netsurg_fcn.prototxt and netsurg_fcn.caffemodel into folder."""
    deploy = os.path.join(folder, "deploy.prototxt")
    weights = os.path.join(folder, "caffenet_random.caffemodel")
    with open(deploy, "w") as f:
        subprocess.run([os.path.join(ROOT, "scripts", "make-caffenet.sh"), "1", "227"], stdout=f,
                       check=True)
    run("init", deploy, "--seed", "7", "--filler", "msra", "--out", weights)
    run("fcn", deploy, weights, "--size", "451x451", "--out", os.path.join(folder, "netsurg_fcn"))
    return deploy, weights


def cli_classify(prototxt, weights, image, mean_file):
    """netsurg classify with the notebooks' preprocessing (the ImageNet
    mean's channel average, RGB -> BGR, x255): its JSON."""
    p = run("classify", prototxt, weights, image, "--mean-file", mean_file, "--channel-mean",
            "--json")
    return json.loads(p.stdout.splitlines()[0])
