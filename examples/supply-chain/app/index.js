console.log(require('left-pad')('hi', 5))
