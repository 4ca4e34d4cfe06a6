const { greet } = require('./greet.js')
console.log(greet(process.env.NAME || 'world'))
