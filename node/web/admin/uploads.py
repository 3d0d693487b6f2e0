"""An image sent with a workspace form (flyer, photo): the same upload the CLI and
API make (groups.operations.upload_media: re-encoded, EXIF removed, owned by the
group). A file over the limit or not an image gives a message for the form and
stores nothing."""

from __future__ import annotations

from starlette.datastructures import UploadFile

from node.groups import operations
from node.groups.errors import OperationError
from node.media.uploads import MAX_UPLOAD
from node.web.admin.guard import Ctx


class UploadProblem(ValueError):
    """What to tell the editor in the form."""


async def take_image(ctx: Ctx, field_name: str) -> str | None:
    """The stored upload's name, None if no file was chosen, or UploadProblem."""
    sent = ctx.form.get(field_name) if ctx.form is not None else None
    if not isinstance(sent, UploadFile) or not sent.filename:
        return None
    data = await sent.read(MAX_UPLOAD + 1)
    if not data:
        return None
    if len(data) > MAX_UPLOAD:
        raise UploadProblem(f"The image is larger than {MAX_UPLOAD // (1024 * 1024)} MB; "
                            "choose a smaller one. Nothing was saved.")
    try:
        return await operations.upload_media(ctx.node, data, group=ctx.group_name)
    except OperationError as exc:
        raise UploadProblem(f"The image could not be used: {exc}. Nothing was saved.") \
            from exc
