# What cmake/TkEmbedSql.cmake and cmake/TkEmbedWeb.cmake share: a file's bytes as the body of a
# C array, read at configure time (file(READ) as hex bytes: no xxd, no escaping pitfalls), with
# the file added to CMAKE_CONFIGURE_DEPENDS so that editing it re-runs the configure step.
#
# tk_embed_hex(<var> <path>): sets <var> to "0x..,0x..,...0x00" in lines of 16 bytes (a final
# NUL, so text can be read as a C string), ready for "static const char x[] = {\n    ${var}};".
# tk_embed_write(<target> <file> <text>): writes <text> to <file> in the binary dir and compiles
# it into <target>.
include_guard(GLOBAL)

function(tk_embed_hex var path)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
    file(READ ${path} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(REGEX REPLACE "((0x..,){16})" "\\1\n    " hex "${hex}")
    set(${var} "${hex}0x00" PARENT_SCOPE)
endfunction()

function(tk_embed_write target file text)
    set(out ${CMAKE_CURRENT_BINARY_DIR}/${file})
    file(CONFIGURE OUTPUT ${out} CONTENT "${text}" @ONLY)
    target_sources(${target} PRIVATE ${out})
endfunction()
