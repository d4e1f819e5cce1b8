# Warnings and sanitizers for every target of the project (libssh CompilerChecks.cmake style).
add_compile_options(-Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes
                    -Wno-unused-parameter -D_GNU_SOURCE)
if(TK_WERROR)
    add_compile_options(-Werror)
endif()
if(TK_SANITIZE)
    add_compile_options(-fsanitize=${TK_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    add_link_options(-fsanitize=${TK_SANITIZE})
endif()
