/* kb_version.h - the commit kbench was built from, taken at build time (every
 * build re-reads it; "-dirty" when the tree had uncommitted changes). */
#ifndef KB_VERSION_H
#define KB_VERSION_H

extern const char kb_git_commit[];

#endif
