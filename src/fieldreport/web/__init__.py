"""The browser widget and session recorder: a committed esbuild bundle (built from ``web/src``)
served by :mod:`fieldreport.web.routes`."""
