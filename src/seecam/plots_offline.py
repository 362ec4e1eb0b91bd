"""The HTML template that makes `dvc plots show` / `dvc plots diff` pages render offline.

DVC's own page loads Vega, Vega-Lite and Vega-Embed from a CDN: offline, or behind a proxy, `dvc_plots/index.html`
is a blank page. This writes a template with the three inlined (`plots.html_template` in .dvc/config points at it),
taken from vl-convert-python, a pinned dependency that ships them: nothing vendored in git, and the JavaScript
changes only with that pin. `make` writes it when it sets up the venv (`python -m seecam.plots_offline`).

The bundle is one classic script (no imports or exports), so it runs before the page's inline `vegaEmbed(...)`
calls; the Vega-Lite version is the newest 5.x it ships, the major version of DVC's plot templates' `$schema`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from seecam.atomic import write_text

TEMPLATE = Path(".dvc/plots_offline.html")  # .dvc/config: [plots] html_template = plots_offline.html
VEGA_LITE_MAJOR = "5"
PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{refresh_tag}
<title>DVC Plot</title>
<!-- {versions}, inlined from vl-convert-python {package}: this page needs no network -->
<script>
BUNDLE
</script>
<style>
table {
    border-spacing: 15px;
}
</style>
</head>
<body>
{plot_divs}
</body>
</html>
"""


def offline_template() -> str:
    """DVC's page with the Vega libraries inlined; `{plot_divs}` and `{refresh_tag}` are DVC's to fill."""
    from importlib import metadata

    import vl_convert

    version = max((v for v in vl_convert.get_vegalite_versions() if v.split(".")[0] == VEGA_LITE_MAJOR),
                  key=lambda v: tuple(map(int, v.split("."))))
    bundle = vl_convert.javascript_bundle("window.vegaEmbed = vegaEmbed;", vl_version=version)
    versions = (f"Vega {vl_convert.get_vega_version()}, Vega-Lite {version}, "
                f"Vega-Embed {vl_convert.get_vega_embed_version()}")
    return (PAGE.replace("{versions}", versions).replace("{package}", metadata.version("vl-convert-python"))
            .replace("BUNDLE", bundle.replace("</script", "<\\/script")))


def main(argv: list[str]) -> None:
    target = Path(argv[0]) if argv else TEMPLATE
    write_text(target, offline_template())
    print(f"wrote {target}: dvc plots pages render offline")


if __name__ == "__main__":
    main(sys.argv[1:])
