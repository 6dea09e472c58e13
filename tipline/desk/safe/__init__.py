"""Safe copies of hostile attachments: a sandbox, a converter seam, and provenance.

``export`` decides what kind of copy each attachment gets; ``converter`` is the seam (the desk's
own sandboxed pipeline in ``own``, or Dangerzone); ``sandbox`` runs programs in bubblewrap with a
seccomp filter and limits; ``stage1`` runs inside it; ``pixels`` reads its bounded output;
``rebuild`` makes the new PDF or PNG outside it.
"""
