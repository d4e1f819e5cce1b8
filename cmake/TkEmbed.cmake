# What cmake/TkEmbedSql.cmake and cmake/TkEmbedWeb.cmake share: a folder's files compiled in as
# C arrays plus a table of them, read at configure time (file(READ) as hex bytes: no xxd, no
# escaping pitfalls), with each file added to CMAKE_CONFIGURE_DEPENDS so that editing it re-runs
# the configure step, and the glob's CONFIGURE_DEPENDS re-running it when a file is added.
#
# tk_embed_files(<target> <file> ROOT <dir> GLOB|GLOB_RECURSE <pattern> TYPE <c type>
#                ROW <row> TEXT <text>): writes <file> in the binary dir and compiles it into
# <target>. Each file the glob finds below <dir> (sorted, paths relative to <dir>) becomes
# `static const <c type> file_<i>[]`, its bytes and a final NUL (so text reads as a C string),
# and one table row: <row> with @rel@ (its path), @dir@ and @name@ (the two halves of the path),
# @array@ (file_<i>), @size@ (its bytes) and @sha@ (the start of its SHA-256) filled in.
# <file> is <text> with @arrays@, @table@ (the rows, one a line) and @i@ (their count) filled in.
include_guard(GLOBAL)

function(tk_embed_hex var path)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
    file(READ ${path} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(REGEX REPLACE "((0x..,){16})" "\\1\n    " hex "${hex}")
    set(${var} "${hex}0x00" PARENT_SCOPE)
endfunction()

function(tk_embed_files target file)
    cmake_parse_arguments(PARSE_ARGV 2 arg "" "ROOT;GLOB;GLOB_RECURSE;TYPE;ROW;TEXT" "")
    get_filename_component(root ${arg_ROOT} ABSOLUTE)
    if(DEFINED arg_GLOB_RECURSE)
        file(GLOB_RECURSE files CONFIGURE_DEPENDS RELATIVE ${root} ${root}/${arg_GLOB_RECURSE})
    else()
        file(GLOB files CONFIGURE_DEPENDS RELATIVE ${root} ${root}/${arg_GLOB})
    endif()
    list(SORT files)
    set(arrays "")
    set(table "")
    set(i 0)
    foreach(rel IN LISTS files)
        tk_embed_hex(hex ${root}/${rel})
        get_filename_component(dir ${rel} DIRECTORY)
        get_filename_component(name ${rel} NAME)
        set(array file_${i})
        file(SIZE ${root}/${rel} size)
        file(SHA256 ${root}/${rel} sha)
        string(SUBSTRING ${sha} 0 20 sha)
        string(CONFIGURE "${arg_ROW}" row @ONLY)
        string(APPEND arrays "/* ${rel} */\nstatic const ${arg_TYPE} ${array}[] = {\n    ${hex}};\n\n")
        string(APPEND table "${row}\n")
        math(EXPR i "${i} + 1")
    endforeach()
    set(out ${CMAKE_CURRENT_BINARY_DIR}/${file})
    file(CONFIGURE OUTPUT ${out} CONTENT "${arg_TEXT}" @ONLY)
    target_sources(${target} PRIVATE ${out})
endfunction()
