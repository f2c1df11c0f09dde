## proxy-deps     install the distro forward proxy (tinyproxy) the networking tests use
.PHONY: proxy-deps
proxy-deps:
	@command -v tinyproxy >/dev/null 2>&1 || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tinyproxy; }
	@tinyproxy -v
