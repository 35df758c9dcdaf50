from rest_framework.renderers import BaseRenderer


class PdfRenderer(BaseRenderer):
    """Lets a client ask for a PDF (Accept: application/pdf or ?format=pdf); the view answers the PDF bytes itself."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data
