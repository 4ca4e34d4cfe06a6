console.log('worker service')
