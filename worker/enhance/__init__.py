"""Django-free DL enhancement engine: phantom, k-space degradation, CE U-Net, training, inference, DICOM I/O, QA.

Entry points for the web side: ``inference.enhance_volume`` / ``inference.load_model``,
``dicom_io.read_series`` / ``dicom_io.write_series``, ``qa.residual_stats`` / ``qa.difference_png``, and
``phantom.make_tissue_model`` / ``phantom.render_contrast`` for synthetic data. Nothing here imports Django.
"""
