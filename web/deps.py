"""Dependency aliases of the web pages: the signed-in customer, a database session, the CSRF check."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.security import Principal
from web.security import require_csrf, web_principal

MeDep = Annotated[Principal, Depends(web_principal)]
CsrfDep = Annotated[None, Depends(require_csrf)]
