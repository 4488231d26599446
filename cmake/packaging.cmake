# The Debian package (SPEC §10): `cmake --build build --target package` makes
# build/vaultwall_VERSION_amd64.deb with CPack. Only the component
# "vaultwall" goes in (the lab vault and the tests stay out); dependencies come
# from dpkg-shlibdeps; the maintainer scripts, conffiles, copyright and
# lintian overrides are in packaging/debian/.
set(VW_PKG ${CMAKE_SOURCE_DIR}/packaging)
set(VW_PKG_VERSION 0.1.0)
set(VW_PKG_RELEASE 1)

# Full RELRO for the packaged programs (lintian's hardening-no-bindnow).
foreach(t vaultwall-loader vaultwalld vaultwallctl)
  target_link_options(${t} PRIVATE -Wl,-z,relro,-z,now)
endforeach()
install(TARGETS vaultwall-loader vaultwalld RUNTIME DESTINATION sbin COMPONENT vaultwall)
install(TARGETS vaultwallctl RUNTIME DESTINATION bin COMPONENT vaultwall)
install(FILES ${CMAKE_SOURCE_DIR}/rules/trusted-services.yaml ${CMAKE_SOURCE_DIR}/rules/example.yaml
        DESTINATION share/vaultwall COMPONENT vaultwall)
install(FILES ${VW_PKG}/rules.yaml DESTINATION /etc/vaultwall COMPONENT vaultwall)
install(FILES ${VW_PKG}/logrotate DESTINATION /etc/logrotate.d RENAME vaultwall COMPONENT vaultwall)
install(FILES ${VW_PKG}/systemd/vaultwalld.service ${VW_PKG}/systemd/vaultwall-attach@.service
        DESTINATION /lib/systemd/system COMPONENT vaultwall)
install(FILES ${VW_PKG}/debian/lintian-overrides DESTINATION share/lintian/overrides RENAME vaultwall
        COMPONENT vaultwall)
# Debian wants the changelog gzipped with no timestamp (reproducible).
set(VW_CHANGELOG_GZ ${CMAKE_BINARY_DIR}/packaging/changelog.Debian.gz)
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/packaging)
add_custom_command(OUTPUT ${VW_CHANGELOG_GZ}
                   COMMAND gzip -9nc ${VW_PKG}/debian/changelog > ${VW_CHANGELOG_GZ}
                   DEPENDS ${VW_PKG}/debian/changelog)
add_custom_target(vw_changelog ALL DEPENDS ${VW_CHANGELOG_GZ})
install(FILES ${VW_CHANGELOG_GZ} ${VW_PKG}/debian/copyright ${CMAKE_SOURCE_DIR}/README.md
              ${CMAKE_SOURCE_DIR}/docs/operators-guide.md
        DESTINATION share/doc/vaultwall COMPONENT vaultwall)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME vaultwall)
set(CPACK_PACKAGE_VERSION ${VW_PKG_VERSION})
set(CPACK_PACKAGE_CONTACT "vaultwall developers <vaultwall@example.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL vaultwall)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${VW_PKG_RELEASE})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # vaultwall_0.1.0-1_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
# CPack indents the continuation lines itself.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "Key Vault style network firewall at XDP speed, with an L7 gate
vaultwall does what the firewalls and virtual networks feature of Key Vault
does, self-hosted: an XDP program admits a packet bound for a protected vault
only when one of the vault's rules does (public IP ranges, VXLAN virtual
network subnets, private endpoints, trusted services), and a daemon compiles
a YAML rule file into BPF maps, reloads it atomically and runs a TLS gate
that checks bearer tokens and permissions as Key Vault does.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${VW_PKG}/debian/postinst ${VW_PKG}/debian/prerm ${VW_PKG}/debian/postrm ${VW_PKG}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
