/** Whether dist/ was built from the sources under `root` as they are now. */
export declare function distIsFresh(root: string): boolean
