"""smplr_tf: a TensorFlow 2 / Keras 3 reproduction of SMPLR (Madadi, Bertiche, Escalera, Pattern Recognition 2020)."""

from setuptools import find_packages, setup

# Pinned to versions that resolve together in one pip command on Python 3.11 (measured; see BUILD_NOTES.md).
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "tensorflow-graphics==2021.12.3",
    "tensorboard==2.21.0",
    "numpy>=1.26,<2.5",
    "h5py>=3.10,<3.15",  # TF 2.21 caps h5py below 3.15
    "opencv-python-headless==5.0.0.93",  # same OpenCV, without GUI system libraries
    "absl-py==2.5.1",
    "scipy==1.17.1",  # .mat reading (SURREAL), Hungarian-free linear algebra helpers
    "tqdm==4.70.1",
    "cdflib==1.3.16",  # Human3.6M D3_Positions .cdf reading (pure Python)
]

EXTRAS = {
    # body-models: Apache-2.0 NumPy SMPL, the independent reference of the SMPL tests.
    "test": ["pytest==9.2.0", "hypothesis==6.170.15", "body-models==0.26.2"],
    # Optional comparisons in benchmarks/smpl_speed.py (smplx is non-commercial: installed by the user, never vendored).
    "reference": ["torch==2.13.0", "smplx"],
}

setup(
    name="smplr_tf",
    version="0.1.0",
    description="SMPLR (deep SMPL reverse) on TensorFlow 2 / Keras 3",
    python_requires=">=3.11",
    packages=find_packages(include=["smplr_tf", "smplr_tf.*"]),
    package_data={"smplr_tf.body": ["assets/*.npz", "assets/NOTICE"]},
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
)
